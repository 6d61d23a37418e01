@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
0,1,2,3,4,5:1,1,1,1,1,1:up
0,2,4,6,8,10,12,14,16,18,20:1,1,1,1,1,1,1,1,1,1,1:up
5,4,3,2,1,0:1,1,1,1,1,1:down
5,4.5,4,3.5,3,2.5,2,1.5,1,0.5,0:0,0,0,0,0,0,0,0,0,0,0:down

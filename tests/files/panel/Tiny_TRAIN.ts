# A hand-written panel: two classes, two dimensions, 6 timesteps.
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength true
@seriesLength 6
@classLabel true up down
@data
0,1,2,3,4,5:1,1,1,1,1,1:up
0,1,2,?,4,5:2,2,2,2,2,2:up
0.5,1.5,2.5,3.5,4.5,5.5:1,1,1,1,1,1:up
5,4,3,2,1,0:1,1,1,1,1,1:down
5,4,3,2,1,0:0,0,0,0,0,0:down
5.5,4.5,3.5,2.5,1.5,0.5:1,1,1,1,1,1:down
